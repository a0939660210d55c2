// Accessibility checks run inside a console page by tests/dashboards/test_accessibility.py.
function unnamed() {
  // Visible controls with no accessible name (a label, aria-label, title or own text).
  return Array.from(document.querySelectorAll("input, select, textarea, button"))
    .filter((e) => e.type !== "hidden" && e.offsetParent !== null)
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
      && !e.getAttribute("title") && !(e.textContent || "").trim())
    .map((e) => e.outerHTML.slice(0, 120));
}
function lowContrast() {
  // Text under WCAG AA: 4.5:1, or 3:1 for large text, against its effective background.
  const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = (c) => c.slice(0, 3).map((v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }).reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (e) => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const e of document.querySelectorAll("main *, header *")) {
    const own = Array.from(e.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || e.offsetParent === null || e.closest("svg")) continue;
    const s = getComputedStyle(e);
    const [a, b] = [lum(rgb(s.color)), lum(background(e))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      bad.push(`${e.tagName}.${e.className}: ${ratio.toFixed(2)} "${e.textContent.trim().slice(0, 30)}"`);
    }
  }
  return bad;
}
