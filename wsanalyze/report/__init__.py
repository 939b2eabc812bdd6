"""Bug-ticket reports: :mod:`.model` collects, :mod:`.markdown` and :mod:`.html`
render, :mod:`.hexdump` dissects the offending frame, :mod:`.framebytes` fetches
its bytes with a targeted second pass over the capture."""
