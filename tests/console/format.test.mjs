// Unit tests of the console's duration format (node --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatDuration } from "../../src/console/format.js";

test("seconds alone below a minute", () => {
  assert.equal(formatDuration(0), "0 seconds");
  assert.equal(formatDuration(1), "1 second");
  assert.equal(formatDuration(53), "53 seconds");
  assert.equal(formatDuration(59), "59 seconds");
});

test("minutes and seconds below an hour", () => {
  assert.equal(formatDuration(60), "1 minute, 0 seconds");
  assert.equal(formatDuration(61), "1 minute, 1 second");
  assert.equal(formatDuration(1800), "30 minutes, 0 seconds");
  assert.equal(formatDuration(3599), "59 minutes, 59 seconds");
});

test("hours and minutes below a day", () => {
  assert.equal(formatDuration(3600), "1 hour, 0 minutes");
  assert.equal(formatDuration(7500), "2 hours, 5 minutes");
  assert.equal(formatDuration(86399), "23 hours, 59 minutes");
});

test("days and hours from a day on", () => {
  assert.equal(formatDuration(86400), "1 day, 0 hours");
  assert.equal(formatDuration(604800), "7 days, 0 hours");
  assert.equal(formatDuration(90061), "1 day, 1 hour");
});

test("never negative or fractional", () => {
  assert.equal(formatDuration(-5), "0 seconds");
  assert.equal(formatDuration(59.9), "59 seconds");
  assert.equal(formatDuration(undefined), "0 seconds");
});
