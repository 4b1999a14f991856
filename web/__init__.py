"""complaintdesk web."""
