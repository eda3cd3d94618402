// A person at Debian's Chromium, driven headless by playwright-core, for
// atlogin's end-to-end tests. Opens `start`, types the handle into atlogin's
// form (found by its label, as a screen reader finds it), signs in at the
// PDS's own page and approves (or declines) there, then follows the redirects
// until the browser is sent to a URL under `stop`, which it prints.
//
//   node chromium.mjs <start> <handle> <password> <approve|decline> <stop> [screenshot-dir]
//
// Fails with the page's URL and text (and a screenshot, when a folder is
// given) when a step does not appear within its time.

import { chromium } from 'playwright-core'

const [start, handle, password, decision, stop, shots] = process.argv.slice(2)
if (!stop || !['approve', 'decline'].includes(decision)) {
  console.error('usage: chromium.mjs <start> <handle> <password> <approve|decline> <stop> [screenshot-dir]')
  process.exit(2)
}
const STEP = 30_000
const began = performance.now()

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
})
let page
try {
  const context = await browser.newContext({ locale: 'en-US' })
  page = await context.newPage()
  // Nothing listens where the relying party wants the browser at the end:
  // the URL is the answer, so the request is answered here.
  let reached
  const arrived = new Promise((resolve) => { reached = resolve })
  await page.route((url) => url.href.startsWith(stop), async (route) => {
    reached(route.request().url())
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'signed in' })
  })

  step('atlogin\'s sign-in form')
  await page.goto(start, { timeout: STEP })
  await page.getByLabel('Your handle').fill(handle, { timeout: STEP })
  await page.getByRole('button', { name: 'Continue' }).click({ timeout: STEP })

  step('the PDS\'s sign-in page')
  const pw = page.locator('input[name="password"]')
  await pw.waitFor({ timeout: STEP })
  const user = page.locator('input[name="username"]')
  if ((await user.count()) > 0 && (await user.inputValue()) === '') {
    await user.fill(handle)
  }
  await pw.fill(password)
  await page.getByRole('button', { name: /^(sign in|next)$/i }).click({ timeout: STEP })

  step('the PDS\'s consent page')
  const choice = decision === 'approve' ? /^(authorize|accept|allow)$/i : /^(deny access|deny|decline|reject)$/i
  await page.getByRole('button', { name: choice }).click({ timeout: STEP })

  step('back through atlogin to the relying party')
  const url = await Promise.race([
    arrived,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`never sent to ${stop}`)), STEP).unref()),
  ])
  console.log(url)
} catch (e) {
  if (page) {
    let text = ''
    try { text = (await page.locator('body').innerText({ timeout: 2_000 })).slice(0, 2_000) } catch {}
    console.error(`${e.message}\nat ${page.url()}\n${text}`)
    if (shots) {
      try { await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }) } catch {}
    }
  } else {
    console.error(e.stack ?? String(e))
  }
  process.exitCode = 1
} finally {
  await browser.close()
}

function step(what) {
  console.error(`chromium: ${((performance.now() - began) / 1000).toFixed(1)} s: ${what}`)
}
