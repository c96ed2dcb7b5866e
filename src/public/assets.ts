import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The browser files: `<repo>/public`, beside both `src/` and `dist/` (the image copies it). */
export const PUBLIC_DIR = join(__dirname, '..', '..', 'public');

/** The files served under `/assets/`: a fixed list, so no request names a path of its own. */
const ASSET_TYPES: Readonly<Record<string, string>> = {
  'admin.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
  'latchkey.css': 'text/css; charset=utf-8',
  'page.js': 'text/javascript; charset=utf-8',
  'popup-result.js': 'text/javascript; charset=utf-8',
};

export interface Asset {
  body: string;
  type: string;
}

/** Where connect.js expects Latchkey to write ALLOWED_RETURN_ORIGINS. */
const ALLOWED_ORIGINS_SLOT = '/* latchkey:allowed-origins */ null';

/**
 * connect.js with the allowed origins written in, so that when a popup is blocked it asks to
 * come back only to a page Latchkey would accept as `return_to` (instead of a 400). The list is
 * of the host applications that embed the script: public by nature.
 */
export function fillConnectScript(source: string, allowedOrigins: readonly string[]): string {
  return source.replace(ALLOWED_ORIGINS_SLOT, JSON.stringify(allowedOrigins));
}

/** Reads each file once and keeps it; a file that is missing reads as undefined (and is retried). */
export function createAssetReader(dir = PUBLIC_DIR): {
  asset(name: string): Promise<Asset | undefined>;
  connectScript(allowedOrigins: readonly string[]): Promise<string | undefined>;
} {
  const cache = new Map<string, Promise<string>>();
  const read = (relative: string): Promise<string | undefined> => {
    let pending = cache.get(relative);
    if (!pending) {
      pending = readFile(join(dir, relative), 'utf8');
      cache.set(relative, pending);
    }
    return pending.catch(() => {
      cache.delete(relative);
      return undefined;
    });
  };
  return {
    async asset(name) {
      const type = Object.prototype.hasOwnProperty.call(ASSET_TYPES, name) ? ASSET_TYPES[name] : undefined;
      if (!type) return undefined;
      const body = await read(join('assets', name));
      return body === undefined ? undefined : { body, type };
    },
    async connectScript(allowedOrigins) {
      const source = await read('connect.js');
      return source === undefined ? undefined : fillConnectScript(source, allowedOrigins);
    },
  };
}
