"""complaintdesk bot."""
