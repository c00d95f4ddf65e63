"""Speed and memory harness for anyrnn (not part of the test run); see README.md here."""
