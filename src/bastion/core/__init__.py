"""Pure logic with no Django imports: names, filenames, metadata, archives, caveats."""
