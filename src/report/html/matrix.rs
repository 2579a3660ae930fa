//! The parity matrix as an HTML table with coloured cells: the same rows, columns and cells
//! as the Markdown matrix ([`crate::report::matrix`]), which decides them.

use super::{attr, esc};
use crate::coverage::tally::Coverage;
use crate::oracle::Family;
use crate::report::RunReport;
use crate::report::matrix::{COVERAGE_TITLE, Cell, coverage_cell, matrix_cell, matrix_operations};

/// The CSS class of a cell.
fn class(cell: Cell) -> &'static str {
    match cell {
        Cell::Pass { .. } => "pass",
        Cell::Fail { .. } => "fail",
        Cell::NotExercised { .. } => "none",
    }
}

/// The matrix section. `certification`: an XKS run, whose columns are the families of its
/// checks and whose rows are the operations something exercised.
pub fn matrix(report: &RunReport, certification: bool) -> String {
    let columns: Vec<Family> = if certification {
        let mut fams: Vec<Family> = report.checks.iter().map(|c| c.family).collect();
        fams.sort();
        fams.dedup();
        fams
    } else {
        Family::ALL.to_vec()
    };
    let mut out = String::from(
        "<section id=\"matrix\"><h2>Parity matrix</h2>\n<p>One row per operation, one column \
         per check family. <b>pass</b>: exercised, no failing deviation · <b>fail (N)</b>: N \
         distinct failing deviations · <b>K known</b>: accepted by the baseline · <b>—</b>: not \
         exercised by that family.</p>\n<div class=\"scroll\"><table class=\"matrix\" id=\"parity-matrix\"><thead><tr>\
         <th>operation</th>",
    );
    for f in &columns {
        out.push_str(&format!("<th>{}</th>", esc(f.title())));
    }
    let coverage = Coverage::of(report).filter(|_| !certification);
    if coverage.is_some() {
        out.push_str(&format!("<th>{COVERAGE_TITLE}</th>"));
    }
    out.push_str("</tr></thead><tbody>\n");
    for op in matrix_operations(report) {
        let cells: Vec<Cell> = columns
            .iter()
            .map(|f| matrix_cell(report, &op, *f))
            .collect();
        let empty = cells.iter().all(|c| *c == Cell::NotExercised { known: 0 });
        if certification && empty {
            continue;
        }
        out.push_str(&format!(
            "<tr data-operation=\"{}\"><th><code>{}</code></th>",
            attr(&op),
            esc(&op)
        ));
        for (cell, family) in cells.iter().zip(&columns) {
            out.push_str(&format!(
                "<td class=\"cell {}\" data-family=\"{}\">{}</td>",
                class(*cell),
                attr(family.title()),
                esc(&cell.to_string())
            ));
        }
        if let Some(c) = &coverage {
            out.push_str(&format!(
                "<td class=\"cell rules\" data-family=\"{COVERAGE_TITLE}\">{}</td>",
                esc(&coverage_cell(c, &op))
            ));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>");
    if let Some(c) = &coverage {
        out.push_str(&format!(
            "<p id=\"rule-coverage\">Rule coverage: {}. <b>rules</b>: rules of the operation \
             exercised, of those the inventory holds (<code>ckscheck run --list-rules</code>).</p>",
            esc(&c.summary())
        ));
        let missed: Vec<_> = c.missed().collect();
        if !missed.is_empty() {
            out.push_str(&format!(
                "<details id=\"rules-not-exercised\"><summary>{} rules not exercised</summary><ul>",
                missed.len()
            ));
            for r in missed {
                out.push_str(&format!(
                    "<li><code>{}</code>: {}</li>",
                    esc(&r.rule.id),
                    esc(r.reason.as_deref().unwrap_or_default())
                ));
            }
            out.push_str("</ul></details>");
        }
    }
    out.push_str("</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    /// Catches an HTML matrix whose cells disagree with the Markdown one's.
    #[test]
    fn cells_are_the_markdown_matrix_cells() {
        let report = sample::report();
        let html = matrix(&report, false);
        let markdown = crate::report::matrix::parity_matrix(&report);
        for op in matrix_operations(&report) {
            assert!(html.contains(&format!("data-operation=\"{op}\"")), "{op}");
            for f in Family::ALL {
                let cell = matrix_cell(&report, &op, f).to_string();
                assert!(markdown.contains(&cell));
                assert!(
                    html.contains(&format!(
                        "data-family=\"{}\">{}</td>",
                        f.title(),
                        esc(&cell)
                    )),
                    "{op} {cell}"
                );
            }
        }
        assert!(html.contains("class=\"cell fail\""), "{html}");
        assert!(html.contains("class=\"cell pass\""), "{html}");
    }
}
