// Plots: self-contained SVG charts (line plots with log axes and bands, heatmaps) for reports.
