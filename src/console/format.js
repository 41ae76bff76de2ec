// Durations as the Session Management screen writes them: "53 seconds",
// "30 minutes, 0 seconds", "2 hours, 5 minutes", "3 days, 4 hours".
export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(Number(totalSeconds) || 0));
  const unit = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (s < 60) return unit(s, "second");
  if (s < 3600) return `${unit(Math.floor(s / 60), "minute")}, ${unit(s % 60, "second")}`;
  if (s < 86400) {
    return `${unit(Math.floor(s / 3600), "hour")}, ${unit(Math.floor((s % 3600) / 60), "minute")}`;
  }
  return `${unit(Math.floor(s / 86400), "day")}, ${unit(Math.floor((s % 86400) / 3600), "hour")}`;
}

// How long ago, in its largest unit, as a device list says it: "just now", "3 minutes ago".
export function formatAgo(totalSeconds) {
  const s = Math.max(0, Math.floor(Number(totalSeconds) || 0));
  const ago = (n, word) => `${n} ${word}${n === 1 ? "" : "s"} ago`;
  if (s < 60) return "just now";
  if (s < 3600) return ago(Math.floor(s / 60), "minute");
  if (s < 86400) return ago(Math.floor(s / 3600), "hour");
  return ago(Math.floor(s / 86400), "day");
}

// A device as its user recognises it: "Chrome 131 on macOS"; the raw user agent when nothing
// of it was recognised; "Unknown device" without one.
export function describeDevice(device, userAgent) {
  if (device && device.browser && device.os) return `${device.browser} on ${device.os}`;
  if (device && (device.browser || device.os)) return device.browser || device.os;
  return userAgent || "Unknown device";
}
