//! Moving and resizing panels on the dashboard's 24-column grid, Grafana's way: the panel under
//! the mouse goes where it is dropped (snapped to whole columns and rows), panels it lands on are
//! pushed down below it, and then everything floats up as far as it can (react-grid-layout's
//! vertical compaction), so the grid never keeps holes above a panel.
//!
//! Only the top level of `panels` is laid out here: rows are full-width, one-unit-high items
//! like any other, and a collapsed row's panels travel inside it.

use super::{Dashboard, GridPos, Panel, GRID_COLUMNS};

/// One grid item: a panel's (or row's) id and where it sits.
pub type Item = (i64, GridPos);

/// Whether two rectangles share a cell.
pub fn collides(a: &GridPos, b: &GridPos) -> bool {
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

/// A position that fits the grid: at least one unit big, no wider than the grid, inside it.
pub fn clamp(g: GridPos) -> GridPos {
    let w = g.w.clamp(1, GRID_COLUMNS);
    GridPos { x: g.x.clamp(0, GRID_COLUMNS - w), y: g.y.max(0), w, h: g.h.max(1) }
}

/// The top-level items of a dashboard, clamped to the grid; rows span the full width and one
/// unit of height whatever their stored size says (that is how the page draws them).
pub fn items(d: &Dashboard) -> Vec<Item> {
    d.panels
        .iter()
        .map(|p| {
            let g = if p.is_row() {
                GridPos { x: 0, y: p.grid_pos.y.max(0), w: GRID_COLUMNS, h: 1 }
            } else {
                clamp(p.grid_pos)
            };
            (p.id, g)
        })
        .collect()
}

/// Vertical compaction. `fixed`, when given, is placed first and never moves, so the others make
/// way for it (going above it when they fit there, else below); every other item, in
/// top-to-bottom order, floats up until something placed is in its way and is then pushed below
/// whatever it overlaps. The result is in the input's order.
pub fn compact(items: &[Item], fixed: Option<i64>) -> Vec<Item> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (Some(items[i].0) != fixed, items[i].1.y, items[i].1.x));
    let mut placed: Vec<Item> = Vec::with_capacity(items.len());
    let mut out = items.to_vec();
    for i in order {
        let (id, mut g) = items[i];
        if Some(id) != fixed {
            // Landed on by the dragged item: jump above it when there is room (so dragging a
            // panel down past its neighbour swaps the two), as react-grid-layout does.
            if let Some((_, f)) = placed.first().filter(|(p, f)| Some(*p) == fixed && collides(f, &g)) {
                let above = GridPos { y: f.y - g.h, ..g };
                if above.y >= 0 && !placed.iter().any(|(_, p)| collides(p, &above)) {
                    g = above;
                }
            }
            while g.y > 0 && !placed.iter().any(|(_, p)| collides(p, &GridPos { y: g.y - 1, ..g })) {
                g.y -= 1;
            }
            while let Some((_, p)) = placed.iter().find(|(_, p)| collides(p, &g)) {
                g.y = p.y + p.h;
            }
        }
        placed.push((id, g));
        out[i] = (id, g);
    }
    out
}

/// The layout after item `id` is dropped at `to` (moved or resized): it takes that place,
/// pushing what it lands on down, and then the whole grid is compacted (which may float the
/// dropped item itself up into a gap, as Grafana does).
pub fn place(items: &[Item], id: i64, to: GridPos) -> Vec<Item> {
    let to = clamp(to);
    let moved: Vec<Item> = items.iter().map(|&(i, g)| if i == id { (i, to) } else { (i, g) }).collect();
    compact(&compact(&moved, Some(id)), None)
}

/// Grid cells a mouse movement of `dx`, `dy` pixels covers, for cells `col_px` wide and
/// `row_px` high (each including the gap to the next one).
pub fn cells(dx: f64, dy: f64, col_px: f64, row_px: f64) -> (i64, i64) {
    let step = |d: f64, px: f64| if px > 0.0 { (d / px).round() as i64 } else { 0 };
    (step(dx, col_px), step(dy, row_px))
}

/// Where a drag started at `start` ends after `dx`, `dy` cells: a move shifts the panel, a
/// resize (from the bottom-right corner) grows or shrinks it, within the grid.
pub fn dragged(start: GridPos, dx: i64, dy: i64, resize: bool) -> GridPos {
    if resize {
        let w = (start.w + dx).clamp(1, GRID_COLUMNS - start.x.clamp(0, GRID_COLUMNS - 1));
        GridPos { w, h: (start.h + dy).max(1), ..start }
    } else {
        clamp(GridPos { x: start.x + dx, y: start.y + dy, ..start })
    }
}

/// Writes a layout back into the dashboard and puts the top-level panels in top-to-bottom,
/// left-to-right order: an open row owns the panels listed after it, so the order must follow
/// the new positions for panels moved into or out of a row to belong where they now stand.
pub fn apply(d: &mut Dashboard, layout: &[Item]) {
    for p in d.panels.iter_mut() {
        if let Some((_, g)) = layout.iter().find(|(id, _)| *id == p.id) {
            if p.is_row() {
                p.grid_pos.y = g.y;
            } else {
                p.grid_pos = *g;
            }
        }
    }
    // A stable sort: panels on the same cell (which compaction never leaves) keep their order.
    d.panels.sort_by_key(|p| (p.grid_pos.y, if p.is_row() { -1 } else { p.grid_pos.x }));
}

/// Where the panels an open row at index `row` owns end: the index of the next row, or the end.
pub fn open_row_end(panels: &[Panel], row: usize) -> usize {
    panels[row + 1..].iter().position(Panel::is_row).map_or(panels.len(), |n| row + 1 + n)
}

/// The first grid line a row's panels start on and how many lines they cover together
/// (`(0, 0)` for none): what opening or closing the row moves the rest by.
pub fn span(panels: &[Panel]) -> (i64, i64) {
    let top = panels.iter().map(|c| c.grid_pos.y).min().unwrap_or(0);
    let bottom = panels.iter().map(|c| c.grid_pos.y + c.grid_pos.h).max().unwrap_or(top);
    (top, bottom - top)
}

/// Opens or closes row `row_id` of the dashboard itself (the layout editor's toggle, which is
/// saved, unlike a viewer's): an open row takes the panels below it, up to the next row, into
/// its `panels` and the grid closes up; a closed row puts its panels back under it, in their
/// places relative to it, pushing what was below down. Closing and opening again restores the
/// layout. False if there is no such row.
pub fn toggle_row(d: &mut Dashboard, row_id: i64) -> bool {
    let Some(i) = d.panels.iter().position(|p| p.id == row_id && p.is_row()) else { return false };
    let row_y = d.panels[i].grid_pos.y;
    if d.panels[i].collapsed.unwrap_or(false) {
        let mut children = std::mem::take(&mut d.panels[i].panels);
        let (top, extent) = span(&children);
        for p in d.panels.iter_mut().filter(|p| p.grid_pos.y > row_y) {
            p.grid_pos.y += extent;
        }
        for c in &mut children {
            c.grid_pos.y = row_y + 1 + c.grid_pos.y - top;
        }
        d.panels[i].collapsed = Some(false);
        d.panels.splice(i + 1..i + 1, children);
    } else {
        let end = open_row_end(&d.panels, i);
        let children: Vec<Panel> = d.panels.drain(i + 1..end).collect();
        d.panels[i].panels = children;
        d.panels[i].collapsed = Some(true);
    }
    let layout = compact(&items(d), None);
    apply(d, &layout);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(x: i64, y: i64, w: i64, h: i64) -> GridPos {
        GridPos { x, y, w, h }
    }

    #[test]
    fn overlapping_panels_are_pushed_down_and_gaps_close() {
        // Three stats on the top line, two graphs below.
        let items = vec![
            (1, g(0, 0, 8, 4)),
            (2, g(8, 0, 8, 4)),
            (3, g(16, 0, 8, 4)),
            (4, g(0, 4, 12, 8)),
            (5, g(12, 4, 12, 8)),
        ];
        // Panel 1 dropped onto panel 3's place: 3 goes below it, 5 below 3; 4 stays, held by 2.
        let out = place(&items, 1, g(16, 0, 8, 4));
        assert_eq!(
            out,
            vec![
                (1, g(16, 0, 8, 4)),
                (2, g(8, 0, 8, 4)),
                (3, g(16, 4, 8, 4)),
                (4, g(0, 4, 12, 8)),
                (5, g(12, 8, 12, 8))
            ]
        );
        // Dropped far below everything, a panel floats up to the first free place.
        let out = place(&items, 4, g(0, 40, 12, 8));
        assert_eq!(out[3], (4, g(0, 4, 12, 8)));
        // Moved below its neighbour in the same column, the two swap.
        let stacked = vec![(1, g(0, 0, 24, 8)), (2, g(0, 8, 24, 8))];
        assert_eq!(place(&stacked, 1, g(0, 9, 24, 8)), vec![(1, g(0, 8, 24, 8)), (2, g(0, 0, 24, 8))]);
    }

    #[test]
    fn resizing_pushes_what_it_grows_into() {
        let items = vec![(1, g(0, 0, 12, 8)), (2, g(12, 0, 12, 8)), (3, g(0, 8, 12, 8))];
        let out = place(&items, 1, dragged(g(0, 0, 12, 8), 4, 2, true));
        assert_eq!(out, vec![(1, g(0, 0, 16, 10)), (2, g(12, 10, 12, 8)), (3, g(0, 10, 12, 8))]);
        // Shrinking lets the panels below float up.
        let out = place(&items, 1, dragged(g(0, 0, 12, 8), 0, -6, true));
        assert_eq!(out[2], (3, g(0, 2, 12, 8)));
    }

    #[test]
    fn drags_stay_inside_the_grid() {
        assert_eq!(dragged(g(20, 3, 8, 4), 10, -9, false), g(16, 0, 8, 4));
        assert_eq!(dragged(g(10, 3, 8, 4), 30, -9, true), g(10, 3, 14, 1));
        assert_eq!(dragged(g(0, 0, 2, 2), -5, 0, true).w, 1);
        assert_eq!(cells(95.0, -40.0, 50.0, 38.0), (2, -1));
        assert_eq!(cells(10.0, 10.0, 0.0, 38.0), (0, 0));
        assert_eq!(clamp(g(-3, -1, 30, 0)), g(0, 0, 24, 1));
    }

    #[test]
    fn applying_a_layout_reorders_panels_and_keeps_rows_full_width() {
        let mut d = crate::dashboard::parse_dashboard(
            r#"{"title":"t","panels":[
                {"id":1,"gridPos":{"x":0,"y":0,"w":12,"h":8}},
                {"id":2,"type":"row","gridPos":{"x":0,"y":8,"w":24,"h":1}},
                {"id":3,"gridPos":{"x":0,"y":9,"w":12,"h":8},"custom":"kept"}]}"#,
        )
        .unwrap();
        let layout = items(&d);
        assert_eq!(layout[1], (2, g(0, 8, 24, 1)));
        // Panel 1 moved into the row, below panel 3.
        let out = place(&layout, 1, g(0, 17, 12, 8));
        apply(&mut d, &out);
        let order: Vec<i64> = d.panels.iter().map(|p| p.id).collect();
        assert_eq!(order, vec![2, 3, 1]);
        assert_eq!(d.panels[0].grid_pos, g(0, 0, 24, 1));
        assert_eq!(d.panels[1].grid_pos, g(0, 1, 12, 8));
        assert_eq!(d.panels[2].grid_pos, g(0, 9, 12, 8));
        assert_eq!(d.panels[1].extra.get("custom").and_then(|v| v.as_str()), Some("kept"));
    }

    #[test]
    fn rows_close_over_their_panels_and_open_them_again() {
        let stored = crate::dashboard::parse_dashboard(
            r#"{"title":"t","panels":[
                {"id":1,"gridPos":{"x":0,"y":0,"w":12,"h":4}},
                {"id":2,"type":"row","gridPos":{"x":0,"y":4,"w":24,"h":1}},
                {"id":3,"gridPos":{"x":0,"y":5,"w":12,"h":8}},
                {"id":4,"gridPos":{"x":12,"y":5,"w":12,"h":6}},
                {"id":5,"type":"row","collapsed":true,"gridPos":{"x":0,"y":13,"w":24,"h":1},
                 "panels":[{"id":6,"gridPos":{"x":0,"y":30,"w":24,"h":5}}]},
                {"id":7,"type":"row","gridPos":{"x":0,"y":14,"w":24,"h":1}}]}"#,
        )
        .unwrap();
        let ids = |d: &Dashboard| d.panels.iter().map(|p| p.id).collect::<Vec<_>>();
        let mut d = stored.clone();
        // Closing row 2 takes 3 and 4 inside it; the rows below close up under it.
        assert!(toggle_row(&mut d, 2));
        assert_eq!(ids(&d), vec![1, 2, 5, 7]);
        assert_eq!(d.panels[1].collapsed, Some(true));
        assert_eq!(d.panels[1].panels.iter().map(|p| p.id).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!((d.panels[2].grid_pos.y, d.panels[3].grid_pos.y), (5, 6));
        // Opening it again gives back the stored layout.
        assert!(toggle_row(&mut d, 2));
        assert_eq!(ids(&d), ids(&stored));
        for (a, b) in d.panels.iter().zip(&stored.panels) {
            assert_eq!(a.grid_pos, b.grid_pos, "panel {}", a.id);
        }
        // Opening row 5 puts panel 6 right under it and pushes row 7 below it.
        assert!(toggle_row(&mut d, 5));
        assert_eq!(ids(&d), vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(d.panels[5].grid_pos, g(0, 14, 24, 5));
        assert_eq!(d.panels[6].grid_pos.y, 19);
        assert!(d.panels[4].panels.is_empty());
        assert!(!toggle_row(&mut d, 3), "a panel is no row");
    }
}
