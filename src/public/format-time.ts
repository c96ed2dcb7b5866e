const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const UTC_FORMAT = new Intl.DateTimeFormat('en-GB', {
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
  timeZone: 'UTC',
});

/** "1 Dec 2025, 08:57 UTC": unambiguous without knowing the reader's time zone (page.js localises it). */
export function formatAbsoluteTime(ms: number): string {
  return `${UTC_FORMAT.format(ms)} UTC`;
}

/** "just now", "5 minutes ago", "yesterday"… relative to `now`; older than a month gives the date. */
export function formatRelativeTime(ms: number, now: number): string {
  const age = now - ms;
  // A time slightly ahead of this clock (another instance's clock) still reads as "just now".
  if (age < 45_000) return 'just now';
  if (age < 90_000) return 'a minute ago';
  if (age < 45 * MINUTE) return `${Math.round(age / MINUTE)} minutes ago`;
  if (age < 90 * MINUTE) return 'an hour ago';
  if (age < 22 * HOUR) return `${Math.round(age / HOUR)} hours ago`;
  if (age < 2 * DAY) return 'yesterday';
  if (age < 30 * DAY) return `${Math.round(age / DAY)} days ago`;
  return `on ${formatAbsoluteTime(ms).replace(/, .*$/, '')}`;
}
