/** The detached process that keeps this task's token file fresh until the job ends. */
import { runRefresherProcess } from '../core/files/token-refresher';

runRefresherProcess();
