"""Write operations of one viewer run two at a time, and many viewers subscribing at once."""
