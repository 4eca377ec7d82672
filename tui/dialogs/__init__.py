"""The TUI's modal dialogs: portal, company, mailbox, adding, the code prompt, small questions."""
