"""complaintdesk config."""
