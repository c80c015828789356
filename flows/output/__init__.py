"""The output side: the release writer and the previous release, read and verified."""
