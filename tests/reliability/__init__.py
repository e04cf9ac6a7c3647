"""Reliability tests (issue 8): each fails on the code before its fix."""
