//! Single-value panels: stat, gauge and bar gauge.

use super::{ChartError, ChartOptions, PanelData, PlotGeometry};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};

pub fn draw_stat<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    super::draw_timeseries(area, data, opts)
}

pub fn draw_gauge<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    super::draw_timeseries(area, data, opts)
}

pub fn draw_bargauge<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    opts: &ChartOptions,
) -> Result<PlotGeometry, ChartError> {
    super::draw_timeseries(area, data, opts)
}
