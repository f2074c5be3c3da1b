"""Wide tables in Chromium against `make run`: they scroll inside their own box
(lms/static/scrolling.js), which is then a named region the keyboard can focus and scroll, with
the key column kept in view; a table that fits adds no tab stop; without JavaScript the page
still does not scroll sideways. The focus ring has 3:1 contrast where it is drawn."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect

from tests.e2e.conftest import Server
from tests.e2e.test_make_run_e2e import sign_in

# The demo's widest table: every learner's latest submission, with a checkbox before the
# learner's row header.
SUBMISSIONS = "/teach/courses/data-prep-classical-ml/assignments/clinical-data-cleaning/submissions"
PHONE: ViewportSize = {"width": 390, "height": 800}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}

# The colour behind an element: the first ancestor's background that is not transparent.
BACKGROUND_BEHIND = """e => {
  for (let a = e.parentElement; a; a = a.parentElement) {
    const colour = getComputedStyle(a).backgroundColor;
    if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") return colour;
  }
  return "rgb(255, 255, 255)";
}"""


def luminance(css_colour: str) -> float:
    """WCAG relative luminance of an opaque `rgb(r, g, b)` colour."""
    red, green, blue = (int(n) / 255 for n in re.findall(r"\d+", css_colour)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def assert_visible_focus_ring(element: Locator) -> None:
    """The focused element shows a ring of at least 3:1 against the background around it."""
    assert element.evaluate("e => e.matches(':focus-visible')")
    style, width, colour = element.evaluate(
        "e => { const s = getComputedStyle(e);"
        " return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }"
    )
    assert style == "solid" and float(width.removesuffix("px")) >= 2, (style, width)
    behind = element.evaluate(BACKGROUND_BEHIND)
    ratio = contrast(colour, behind)
    assert ratio >= 3, f"focus ring {colour} on {behind}: {ratio:.2f}:1"


def signed_in(browser: Browser, server: Server, email: str, **options: object) -> BrowserContext:
    context = browser.new_context(**options)  # type: ignore[arg-type]
    page = context.new_page()
    sign_in(page, server, email, "demo-password")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.close()
    return context


def page_width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_wide_table_scrolls_in_a_focusable_region_and_keeps_its_key_column(
    make_run: Server, browser: Browser
) -> None:
    context = signed_in(browser, make_run, "instructor@example.org", viewport=PHONE)
    page = context.new_page()
    page.goto(make_run.base_url + SUBMISSIONS)
    region = page.get_by_role("region", name=re.compile("submitted"))
    expect(region).to_have_attribute("tabindex", "0")
    assert page_width(page) <= PHONE["width"]
    assert region.evaluate("e => e.scrollWidth > e.clientWidth")

    # From the first checkbox inside, Shift+Tab lands on the box itself; arrows scroll it.
    region.locator("input[type=checkbox]").first.focus()
    page.keyboard.press("Shift+Tab")
    expect(region).to_be_focused()
    assert_visible_focus_ring(region)
    page.keyboard.press("ArrowRight")
    page.wait_for_function("e => e.scrollLeft > 0", arg=region.element_handle())

    # Scrolled to the far end: the last column is in view, and so is each row's learner.
    region.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
    box = region.bounding_box()
    key = region.locator("tbody th[scope=row]").first.bounding_box()
    last = region.locator("tbody tr").first.locator("td").last.bounding_box()
    assert box and key and last
    assert abs(key["x"] - box["x"]) <= 1, (key, box)
    assert last["x"] + last["width"] <= box["x"] + box["width"] + 1, (last, box)

    page.set_viewport_size(DESKTOP)
    assert page_width(page) <= DESKTOP["width"]
    context.close()


def test_a_table_that_fits_adds_no_tab_stop_until_it_scrolls(
    make_run: Server, browser: Browser
) -> None:
    context = signed_in(browser, make_run, "admin@example.org", viewport=DESKTOP)
    page = context.new_page()
    page.goto(make_run.base_url + "/admin/programs")
    wrapper = page.locator(".table-wrap").first
    expect(wrapper).to_be_attached()
    assert not wrapper.evaluate("e => e.scrollWidth > e.clientWidth")
    expect(wrapper).not_to_have_attribute("tabindex", re.compile(".*"))
    expect(wrapper).not_to_have_attribute("role", re.compile(".*"))

    page.set_viewport_size(PHONE)
    expect(wrapper).to_have_attribute("tabindex", "0")
    expect(wrapper).to_have_attribute("role", "region")
    expect(page.get_by_role("region", name="Programs")).to_have_count(1)
    assert page_width(page) <= PHONE["width"]

    page.set_viewport_size(DESKTOP)
    expect(wrapper).not_to_have_attribute("tabindex", re.compile(".*"))
    context.close()


def test_without_javascript_the_page_still_does_not_scroll_sideways(
    make_run: Server, browser: Browser
) -> None:
    context = signed_in(
        browser, make_run, "instructor@example.org", viewport=PHONE, java_script_enabled=False
    )
    page = context.new_page()
    page.goto(make_run.base_url + SUBMISSIONS)
    expect(page.locator(".table-key")).to_have_count(0)  # scrolling.js did not run
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        assert page_width(page) <= viewport["width"], viewport
    context.close()


def test_focus_ring_has_three_to_one_contrast_in_the_header_and_the_page(
    make_run: Server, browser: Browser
) -> None:
    context = signed_in(browser, make_run, "learner@example.org", viewport=DESKTOP)
    page = context.new_page()
    page.goto(make_run.base_url + "/learn/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    brand = page.get_by_role("link", name="AI Engineer Academy")
    expect(brand).to_be_focused()
    assert_visible_focus_ring(brand)  # on the header's background
    page.get_by_role("button", name="Change language").focus()
    page.keyboard.press("Shift+Tab")
    assert_visible_focus_ring(page.get_by_label("Language"))  # on the footer's
    first_in_main = page.locator("main a").first
    first_in_main.focus()
    assert_visible_focus_ring(first_in_main)  # on the page's white
    context.close()
