"""What goes to Xero: batch files rendered from the warehouse (JSON bodies and the CSV template)."""
