"""Model lifecycle functions: rolling a canary back when its alarm fires."""
