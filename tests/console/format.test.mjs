// Unit tests of the console's duration format (node --test). The cases are shared with the
// Rust formatter the CLI uses (src/duration.rs), so both read alike.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describeDevice, formatAgo, formatDuration } from "../../src/console/format.js";

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

test("how long ago, in its largest unit", () => {
  assert.equal(formatAgo(5), "just now");
  assert.equal(formatAgo(60), "1 minute ago");
  assert.equal(formatAgo(3 * 60 + 59), "3 minutes ago");
  assert.equal(formatAgo(7200), "2 hours ago");
  assert.equal(formatAgo(86400 * 3), "3 days ago");
});

test("a device as its user knows it", () => {
  const chrome = { browser: "Chrome 131", os: "macOS", kind: "desktop" };
  assert.equal(describeDevice(chrome, "Mozilla/5.0 …"), "Chrome 131 on macOS");
  assert.equal(describeDevice({ browser: "curl", os: null, kind: "other" }, "curl/8"), "curl");
  assert.equal(describeDevice(null, "my-app/1.0"), "my-app/1.0");
  assert.equal(describeDevice(null, null), "Unknown device");
});
