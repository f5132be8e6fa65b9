"""What goes to Xero: batch files rendered from the warehouse (JSON bodies and the CSV template, checked
against Xero's schema), and the API client that sends them to each practice's organisation (push)."""
