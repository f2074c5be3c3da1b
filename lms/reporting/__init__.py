"""Reporting: report data built from the queries (report), and the files and pictures made of
it: CSV, XLSX and PDF exports, charts, certificate PDFs and their fonts. Imports queries and
models, never a service or a view.
"""
