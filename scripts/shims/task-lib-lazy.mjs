// azure-pipelines-task-lib requires, when it loads, modules that only some of its functions use:
// child_process (rmRF on Windows, exec), toolrunner (and with it q, events and child_process),
// externaloutput (and stream), minimatch (find and match) and its own 63 KiB of localised messages.
// No task step here runs a tool or matches files, and a message is loaded only when one is shown, so
// these load on first use instead: each such require becomes a proxy that requires the real module
// when a property is read or it is called. Every rewrite must find its text exactly once, so a
// task-lib release that changes these lines fails the build instead of silently loading them again.
import fs from 'node:fs';

const LAZY_HELPER = `var __witLazy = (load) => {
  let real;
  const get = () => (real ??= load());
  return new Proxy(function () {}, {
    get: (_, key) => get()[key],
    has: (_, key) => key in get(),
    apply: (_, self, args) => Reflect.apply(get(), self, args),
    construct: (_, args) => Reflect.construct(get(), args),
  });
};
`;

const lazy = (spec) => [`require(${spec})`, `__witLazy(() => require(${spec}))`];
// Exports copied from a lazy module at load time become getters, so reading them is what loads it.
const getter = (name, from) => [`exports.${name} = ${from}.${name};`, `Object.defineProperty(exports, "${name}", { enumerable: true, get: () => ${from}.${name} });`];

const REWRITES = {
  'task.js': [lazy('"child_process"'), lazy('"minimatch"'), lazy('"./toolrunner"'), lazy('"./externaloutput"'), getter('ToolRunner', 'trm'), getter('defaultAllowedVsoCommands', 'eom')],
  'internal.js': [lazy('"minimatch"'), lazy("'./lib-resource'")],
};

export const taskLibLazy = {
  name: 'task-lib-lazy',
  setup(b) {
    b.onLoad({ filter: /[\\/]azure-pipelines-task-lib[\\/](task|internal)\.js$/ }, (a) => {
      const file = a.path.split(/[\\/]/).pop();
      let text = fs.readFileSync(a.path, 'utf8');
      for (const [from, to] of REWRITES[file]) {
        const at = text.indexOf(from);
        if (at < 0 || text.indexOf(from, at + from.length) >= 0) {
          throw new Error(`task-lib-lazy: expected exactly one '${from}' in azure-pipelines-task-lib/${file}; review the rewrite for this task-lib version`);
        }
        text = text.slice(0, at) + to + text.slice(at + from.length);
      }
      return { contents: LAZY_HELPER + text, loader: 'js' };
    });
  },
};
