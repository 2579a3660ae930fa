//! The page around the report: its inline style sheet (screen and print) and its inline
//! script (copy buttons that work offline; every entry opened for printing).

use super::esc;

/// The style sheet: no font or image from anywhere, colours that print.
const STYLE: &str = r#"
:root { --pass:#d7f5dd; --pass-ink:#0b5d1e; --fail:#fbd5d5; --fail-ink:#8a1010;
  --warn:#fff0c2; --warn-ink:#6b4e00; --none:#eeeeee; --known:#dde8fb; --ink:#1b1f24; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  margin: 0 auto; padding: 1.5rem; max-width: 1200px; line-height: 1.4; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #ccd; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
pre { background: #f5f6f8; border: 1px solid #dde; padding: .5rem; overflow-x: auto;
  white-space: pre-wrap; word-break: break-word; margin: .3rem 0; }
.verdict { font-size: 1.1rem; font-weight: 600; padding: .6rem .8rem; border-radius: 6px; }
.verdict.pass { background: var(--pass); color: var(--pass-ink); }
.verdict.fail { background: var(--fail); color: var(--fail-ink); }
.caveat { background: var(--warn); color: var(--warn-ink); padding: .4rem .8rem; border-radius: 6px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .8rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; margin: .5rem 0; }
table.checks, table.requirements { width: 100%; }
table.matrix { font-size: .8rem; }
table.matrix th, table.matrix td { padding: .2rem .35rem; }
table.matrix thead th { white-space: normal; text-align: center; }
table.checks { font-size: .85rem; }
td { overflow-wrap: break-word; }
.scroll { overflow-x: auto; }
th, td { border: 1px solid #c9ccd3; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef0f4; }
td.cell { text-align: center; font-weight: 600; white-space: nowrap; }
.cell.pass, .cell.passed { background: var(--pass); color: var(--pass-ink); }
.cell.fail, .cell.failed, .cell.failing { background: var(--fail); color: var(--fail-ink); }
.cell.none, .cell.ignored, .cell.not-run { background: var(--none); color: #555; }
.cell.unsettled, .cell.warning, .cell.no-deviation { background: var(--warn); color: var(--warn-ink); }
.cell.known, .cell.fixed, .cell.unobserved { background: var(--known); color: #1d3f7a; }
.badge { display: inline-block; border-radius: 4px; padding: 0 .4rem; font-size: .8rem;
  font-weight: 700; margin-right: .4rem; text-transform: uppercase; }
.badge.failing { background: var(--fail); color: var(--fail-ink); }
.badge.unsettled, .badge.warning { background: var(--warn); color: var(--warn-ink); }
.badge.known, .badge.fixed, .badge.unobserved { background: var(--known); color: #1d3f7a; }
details.deviation { border: 1px solid #c9ccd3; border-radius: 6px; margin: .4rem 0; padding: .3rem .6rem; }
details.deviation > summary { cursor: pointer; }
details.deviation[open] > summary { margin-bottom: .4rem; }
.diff .add { background: #e6ffec; color: #116329; display: block; }
.diff .del { background: #ffebe9; color: #82071e; display: block; }
.diff .ctx { display: block; }
.cmd { position: relative; }
button.copy { float: right; font-size: .75rem; margin-left: .5rem; cursor: pointer; }
svg.histogram { border: 1px solid #dde; background: #fff; margin: .3rem 0; }
.histograms { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: .8rem; }
footer { margin-top: 2rem; color: #666; font-size: .8rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  button.copy { display: none; }
  details.deviation { break-inside: avoid; }
  h2 { break-after: avoid; }
  .cell, .badge, .verdict, .diff .add, .diff .del, .caveat {
    -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// The script: copy buttons (the clipboard where the page may use it, else the text is
/// selected for Ctrl-C), and every entry opened before printing. It loads nothing. Last, it
/// marks the body with the number of copy buttons it serves (`data-copy-ready`): a page whose
/// script did not run has no such mark.
const SCRIPT: &str = r#"
document.addEventListener('click', function (e) {
  var b = e.target.closest ? e.target.closest('button.copy') : null;
  if (!b) return;
  var pre = document.getElementById(b.getAttribute('data-target'));
  if (!pre) return;
  var text = pre.textContent;
  function select() {
    var r = document.createRange(); r.selectNodeContents(pre);
    var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
    var ok = false; try { ok = document.execCommand('copy'); } catch (_) {}
    b.textContent = ok ? 'copied' : 'selected: press Ctrl-C';
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { b.textContent = 'copied'; }, select);
  } else { select(); }
});
window.addEventListener('beforeprint', function () {
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
});
document.body.setAttribute('data-copy-ready', String(document.querySelectorAll('button.copy').length));
"#;

/// The whole document around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\
         <footer>Generated by ckscheck. This page is self-contained: it loads nothing from the \
         network.</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        esc(title)
    )
}
