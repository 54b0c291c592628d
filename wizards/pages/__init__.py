"""The wizard pages, one decision each."""
