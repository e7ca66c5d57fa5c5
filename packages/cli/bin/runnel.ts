#!/usr/bin/env node
// The `runnel` entrypoint: everything lives in src/main.ts so it can be tested in-process.
import { main } from '../src/main.ts';

await main(process.argv, process.env);
