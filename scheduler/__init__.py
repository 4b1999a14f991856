"""complaintdesk scheduler."""
