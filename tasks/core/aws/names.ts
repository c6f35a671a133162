/** The forms AWS gives its names, shared by the task's inputs, its connection type and Validate. */
export const ROLE_ARN = /^arn:aws[-a-z]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
