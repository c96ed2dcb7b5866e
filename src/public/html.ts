/** Escapes text for HTML element content and quoted attributes. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLES = `
:root { --fg:#1d2433; --muted:#4a5368; --bg:#f5f7fb; --card:#fff; --line:#d8deea; --accent:#1f4fd1; --accent-dark:#173ba0;
  --ok:#136f3a; --ok-bg:#e6f5ec; --warn:#8a4b00; --warn-bg:#fff3e0; --err:#a3162b; --err-bg:#fdeaec; }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, sans-serif; color:var(--fg); background:var(--bg); }
main { max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:1.5rem 1.75rem; box-shadow:0 1px 2px rgba(20,30,60,.06); }
h1 { font-size:1.5rem; margin:0 0 .25rem; } h2 { font-size:1.1rem; margin:1.5rem 0 .5rem; }
p.lead { color:var(--muted); margin:0 0 1.25rem; }
.providers { list-style:none; padding:0; margin:0; display:grid; gap:.75rem; }
.button { display:inline-flex; align-items:center; justify-content:center; gap:.5rem; min-height:2.75rem; padding:.6rem 1.1rem; border-radius:8px;
  border:1px solid var(--accent); background:var(--accent); color:#fff; font:inherit; font-weight:600; text-decoration:none; cursor:pointer; }
.button:hover { background:var(--accent-dark); }
.button.secondary { background:#fff; color:var(--accent); }
.button.secondary:hover { background:#eef2fc; }
.button:focus-visible, input:focus-visible { outline:3px solid #f0b429; outline-offset:2px; }
.notice { border-radius:8px; padding:.75rem 1rem; margin:0 0 1.25rem; border:1px solid; }
.notice.ok { color:var(--ok); background:var(--ok-bg); border-color:#9fd5b3; }
.notice.warn { color:var(--warn); background:var(--warn-bg); border-color:#f3c98b; }
.notice.error { color:var(--err); background:var(--err-bg); border-color:#f2a7b2; }
.code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.9em; }
table { width:100%; border-collapse:collapse; } th, td { text-align:left; padding:.5rem .25rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:.85rem; color:var(--muted); font-weight:600; }
.status-active { color:var(--ok); font-weight:600; } .status-reauth_required { color:var(--warn); font-weight:600; }
label { display:block; font-weight:600; margin-bottom:.35rem; }
input[type=password], input[type=text] { width:100%; font:inherit; padding:.6rem .75rem; border:1px solid #8a94a8; border-radius:8px; }
.field-error { color:var(--err); margin:.35rem 0 0; }
.hint { color:var(--muted); font-size:.9rem; margin:.35rem 0 1rem; }
footer { color:var(--muted); font-size:.85rem; margin-top:1.5rem; text-align:center; }
`;

/** The page shell: inline CSS only, no external resource of any kind. */
export function layout(title: string, body: string, options: { script?: string } = {}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>${STYLES}</style>
</head>
<body>
<main>
${body}
<footer>Latchkey keeps your credentials encrypted and never shows them to this page.</footer>
</main>
${options.script ? `<script>${options.script}</script>` : ''}
</body>
</html>`;
}
