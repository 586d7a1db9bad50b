"""Local stand-ins for the external systems sagelift talks to. None of this is imported by the product."""
