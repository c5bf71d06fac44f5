from reprise.cli import entry

entry()
