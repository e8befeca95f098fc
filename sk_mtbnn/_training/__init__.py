"""Private training machinery: the skorch net subclass, losses and loaders."""
