"""The operator command line: `azs3copy COMMAND` (main.py builds the parser; one module a command)."""
