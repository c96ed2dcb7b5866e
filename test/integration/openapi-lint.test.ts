import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildOpenApiDocument } from '../../src/http/openapi';

const ROOT = resolve(__dirname, '../..');

/**
 * The warnings of `redocly lint` (recommended rules, redocly.yaml) that are accepted, each with
 * its reason. Any other warning, and any error, fails the test: a new one needs a fix or a line
 * here.
 */
const ACCEPTED_WARNINGS: Array<{ rule: string; pointer: string; why: string }> = [
  ...['/healthz', '/readyz', '/metrics', '/openapi.json'].map((path) => ({
    rule: 'operation-4xx-response',
    pointer: `#/paths/${path.replace(/\//g, '~1')}/get/responses`,
    why: 'an ops route takes no input and no API key, so there is no 4xx a caller could get',
  })),
];

interface Problem {
  ruleId: string;
  severity: 'error' | 'warn';
  message: string;
  location: Array<{ pointer: string }>;
}

/** Redocly CLI, offline: no telemetry, no update check; the document has no remote $ref. */
function lint(file: string): { totals: { errors: number; warnings: number }; problems: Problem[] } {
  const run = spawnSync(
    join(ROOT, 'node_modules', '.bin', 'redocly'),
    ['lint', file, '--config', join(ROOT, 'redocly.yaml'), '--format', 'json'],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    },
  );
  const start = run.stdout.indexOf('{');
  if (start < 0) throw new Error(`redocly lint printed no report:\n${run.stderr}${run.stdout}`);
  return JSON.parse(run.stdout.slice(start));
}

describe('the generated OpenAPI document, linted by Redocly CLI', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'latchkey-openapi-lint-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has no error, and no warning but the accepted ones', () => {
    const file = join(dir, 'openapi.json');
    // A production-like PUBLIC_URL: the development default (localhost) is a warning of its own.
    writeFileSync(file, JSON.stringify(buildOpenApiDocument({ publicUrl: 'https://latchkey.internal' })));
    const report = lint(file);
    const errors = report.problems.filter((p) => p.severity === 'error');
    expect(errors.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`)).toEqual([]);
    expect(report.totals.errors).toBe(0);
    const warnings = report.problems
      .filter((p) => p.severity === 'warn')
      .map((p) => `${p.ruleId} at ${p.location[0]?.pointer}`)
      .sort();
    expect(warnings).toEqual(ACCEPTED_WARNINGS.map((w) => `${w.rule} at ${w.pointer}`).sort());
  });

  it('fails a document with a broken $ref (the linter does run)', () => {
    const file = join(dir, 'broken.json');
    const doc = buildOpenApiDocument({ publicUrl: 'https://latchkey.internal' }) as unknown as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    doc.paths['/healthz']!.get!.responses['503'] = { $ref: '#/components/responses/E999' };
    writeFileSync(file, JSON.stringify(doc));
    expect(lint(file).problems.map((p) => p.ruleId)).toContain('no-unresolved-refs');
  });
});
