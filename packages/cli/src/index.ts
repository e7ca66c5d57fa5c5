export { main } from './main.ts';
export { startSingleNode } from './start.ts';
export { loadConfig, type ConfigArgs } from './config.ts';
