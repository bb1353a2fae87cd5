"""Renderers: read a pack's data files and present them (PDF, workbook). They never compute compliance."""
