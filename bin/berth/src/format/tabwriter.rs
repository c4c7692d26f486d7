//! Go's `text/tabwriter` as the docker CLI configures it (`NewWriter(out, minwidth,
//! tabwidth=1, padding, ' ', 0)`): tab-terminated cells aligned per column block, the last
//! cell of a line unaligned, a line without tabs ending every open block.

/// Aligns `text` the way Go's tabwriter would after a final `Flush`.
pub fn align(text: &str, minwidth: usize, padding: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    let mut pending: Vec<Vec<&str>> = Vec::new();
    let mut lines: Vec<&str> = text.split('\n').collect();
    // A trailing newline ends the last line rather than starting an empty one.
    let ends_with_newline = text.ends_with('\n');
    if ends_with_newline {
        lines.pop();
    }
    let count = lines.len();
    for (index, line) in lines.into_iter().enumerate() {
        let cells: Vec<&str> = line.split('\t').collect();
        let single = cells.len() == 1;
        pending.push(cells);
        let last = index + 1 == count;
        if single && (!last || ends_with_newline) {
            // Go flushes when a newline ends a line holding a single cell.
            format_block(&pending, minwidth, padding, &mut out, true);
            pending.clear();
        }
    }
    if !pending.is_empty() {
        format_block(&pending, minwidth, padding, &mut out, ends_with_newline);
    }
    out
}

fn format_block(
    lines: &[Vec<&str>],
    minwidth: usize,
    padding: usize,
    out: &mut String,
    newline_after_last: bool,
) {
    let mut widths = Vec::new();
    format_columns(
        lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        out,
        newline_after_last,
    );
}

#[allow(clippy::too_many_arguments)]
fn format_columns(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
    newline_after_last: bool,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out, newline_after_last);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            let cell = lines[this][column].chars().count() + padding;
            width = width.max(cell);
            this += 1;
        }
        widths.push(width);
        format_columns(
            lines,
            line0,
            this,
            widths,
            minwidth,
            padding,
            out,
            newline_after_last,
        );
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out, newline_after_last);
}

fn write_lines(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &[usize],
    out: &mut String,
    newline_after_last: bool,
) {
    for (index, cells) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < cells.len() {
                let used = cell.chars().count();
                for _ in used..widths[j] {
                    out.push(' ');
                }
            } else if j + 1 < cells.len() {
                // A cell beyond the known widths is still tab-terminated.
                out.push(' ');
            }
        }
        if index + 1 < lines.len() || newline_after_last {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_pad_to_the_widest_cell_plus_padding_with_a_minimum() {
        let text = "CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox:latest\tx\n";
        assert_eq!(
            align(text, 10, 3),
            "CONTAINER ID   IMAGE            NAMES\nabc            busybox:latest   x\n"
        );
    }

    #[test]
    fn a_line_without_tabs_ends_the_column_block() {
        let text = "a\tb\tc\nplain\nlonger cell\tb\tc\n";
        assert_eq!(align(text, 0, 1), "a b c\nplain\nlonger cell b c\n");
    }

    #[test]
    fn blocks_nest_by_column_as_go_does() {
        // The first column spans all three lines; the second only the first two.
        let text = "x\tyy\tz\nxxxx\ty\tz\nx\tlast\n";
        assert_eq!(align(text, 0, 1), "x    yy z\nxxxx y  z\nx    last\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let text = "é\tb\nab\tc\n";
        assert_eq!(align(text, 0, 1), "é  b\nab c\n");
    }
}
