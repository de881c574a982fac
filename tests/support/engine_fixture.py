"""(to be written by the daemon work) fixture `engine` -> a running engine subprocess on a temporary endpoint."""
