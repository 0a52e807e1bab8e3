"""A screenshot of a running coordinator's dashboard, for docs/dashboard.png.

The dashboard's charts fill while someone watches (the coordinator samples for open dashboards only), so
this keeps the page open for a while first. Uses Debian's Chromium, as the tests do.

    .venv/bin/python tilt/screenshot.py URL OUT [--watch SECONDS] [--link ID] [--size 1440x900]
"""

import argparse

from playwright.sync_api import expect, sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the coordinator, e.g. http://127.0.0.1:8080")
    parser.add_argument("out", help="where the PNG goes")
    parser.add_argument("--watch", type=float, default=300, help="seconds to keep the page open first")
    parser.add_argument("--link", help="select this link before the screenshot")
    parser.add_argument("--size", default="1440x900", help="viewport, WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{args.url.rstrip('/')}/ui/")
            expect(page.locator("#connection")).to_have_attribute("data-status", "live", timeout=30_000)
            page.wait_for_timeout(args.watch * 1000)
            if args.link:
                page.locator(f'#link-list button[data-link="{args.link}"]').click()
                page.wait_for_timeout(1500)
            page.screenshot(path=args.out, full_page=True)
        finally:
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
