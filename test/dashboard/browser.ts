/**
 * Headless Chromium for the dashboard's browser tests: Debian's `chromium` (installed by
 * .ci/run), driven by playwright-core, one browser per test file, a fresh profile each time,
 * and the flags that keep it from reaching for the network.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/** Where Debian installs Chromium; SDJ_CHROMIUM overrides it. */
export const CHROMIUM = process.env['SDJ_CHROMIUM'] ?? '/usr/bin/chromium';

/** A running browser and its profile folder. */
export interface TestBrowser {
  browser: BrowserContext;
  close: () => Promise<void>;
}

/** Starts Chromium with a fresh profile (a persistent context, so the profile folder is ours). */
export async function startBrowser(options: { colorScheme?: 'light' | 'dark' } = {}): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'sdj-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    colorScheme: options.colorScheme ?? 'light',
  });
  return {
    browser: context,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export type { Browser };
