"""complaintdesk handlers."""
