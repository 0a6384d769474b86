from edgeseg.cli import main_exit

main_exit()
