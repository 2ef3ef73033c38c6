"""What the pages draw and say, without Streamlit: figures, the transect block, the Compare page's grouping, duration estimates and shared labels."""
