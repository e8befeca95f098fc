"""Private parts of :mod:`sk_mtbnn.persistence`: the value codec and the network state."""
