// e2e_node.mjs URL JSON(on|off) EXPECTED: Node.js fetch + eventsource-parser (3.x), the
// usual way to read an SSE stream in Node; prints "events=<n> wall=<s> cpu=<s>".
import { createParser } from 'eventsource-parser';

const [url, jsonArg, expectedArg] = process.argv.slice(2);
const json = jsonArg === 'on';
const expected = Number(expectedArg);
let n = 0, done = false, bad = 0;
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
const parser = createParser({
  onEvent(event) {
    if (event.data === '[DONE]') { done = true; return; }
    n++;
    if (json) {
      const v = JSON.parse(event.data);
      if (typeof v !== 'object') bad++;
    }
  },
});
const res = await fetch(url);
const decoder = new TextDecoder();
for await (const chunk of res.body) parser.feed(decoder.decode(chunk, { stream: true }));
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const cu = process.cpuUsage(c0);
console.log(`events=${n} wall=${wall.toFixed(6)} cpu=${((cu.user + cu.system) / 1e6).toFixed(6)}`);
if (n !== expected || !done || bad > 0) {
  console.error(`node: got ${n} events (done=${done}), want ${expected}`);
  process.exit(1);
}
