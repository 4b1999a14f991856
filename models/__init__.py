"""complaintdesk models."""
