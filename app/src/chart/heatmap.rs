//! Heatmap of classic histogram buckets.

use super::{ChartError, ChartOptions, PanelData, PlotGeometry};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};

pub fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    super::draw_timeseries(area, data, opts)
}
