// Unit tests of the console's duration format (node --test). The cases are shared with the
// Rust formatter the CLI uses (src/duration.rs), so both read alike.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { formatDuration } from "../../src/console/format.js";

const cases = JSON.parse(readFileSync(new URL("./durations.json", import.meta.url)));

test("every shared case", () => {
  for (const [seconds, text] of cases) {
    assert.equal(formatDuration(seconds), text, `${seconds} seconds`);
  }
});

test("never negative or fractional", () => {
  assert.equal(formatDuration(-5), "0 seconds");
  assert.equal(formatDuration(59.9), "59 seconds");
  assert.equal(formatDuration(undefined), "0 seconds");
});
