#!/usr/bin/env node
// See bin/plume.js: the pinned AWS SDK's notice about future Node versions is not for every run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../dist/joystick/cli.js');
const code = await main(process.argv);
process.stdout.write('', () => process.exit(code));
