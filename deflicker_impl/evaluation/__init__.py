"""Measuring deflickering: metrics, synthetic flicker, reports, plots and side-by-side views."""
