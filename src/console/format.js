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
